from fastapi import APIRouter

router = APIRouter()


@router.get("/shelves/{shelf}")
def shelf(shelf: str) -> dict[str, str]:
    return {"shelf": shelf, "package": __package__ or ""}
