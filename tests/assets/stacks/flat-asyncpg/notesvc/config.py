from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.config import Config

config = Config(".env")
API_KEY = config("API_KEY")  # no default: the app cannot start without it


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTES_")

    db_uri: str
    page_size: int = 20


settings = Settings()
