from fastapi import FastAPI

application = FastAPI(title="ticketing")


@application.get("/tickets/{ticket_id}")
def ticket(ticket_id: int) -> dict[str, int]:
    return {"ticket_id": ticket_id}
