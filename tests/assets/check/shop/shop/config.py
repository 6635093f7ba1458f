from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DB_")

    url: str = "postgresql+asyncpg://shop:shop@127.0.0.1:5432/shop"
    pool_size: int = 5


settings = Settings()
