"""An ASGI2 ("double callable") application: the class is called with the scope, the instance with
receive and send. Uvicorn serves it as it is."""


class App:
    def __init__(self, scope: dict) -> None:
        self.scope = scope

    async def __call__(self, receive, send) -> None:
        if self.scope["type"] != "http":
            return  # no lifespan support: Uvicorn notes it and serves on
        body = f"asgi2 says hello from {self.scope['path']}".encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


app = App
