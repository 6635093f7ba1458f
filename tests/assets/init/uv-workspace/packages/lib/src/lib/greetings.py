def greeting() -> str:
    return "hello from the workspace library"
