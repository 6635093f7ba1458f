def greeting() -> str:
    return "hello from webpkg"
