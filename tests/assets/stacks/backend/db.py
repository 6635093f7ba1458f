import os

from sqlalchemy import create_engine

# The URL assembled from parts, as this project's deployment gave them.
URL = "mysql+pymysql://{}:{}@{}:{}/{}".format(
    os.environ["DB_USER"],
    os.environ["DB_PASSWORD"],
    os.environ["DB_HOST"],
    os.getenv("DB_PORT", "3306"),
    os.environ["DB_NAME"],
)
engine = create_engine(URL, pool_pre_ping=True)
