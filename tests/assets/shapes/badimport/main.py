from fastapi import FastAPI

import settings_module_that_is_not_there

app = FastAPI()
