"""Configuration shipped with the models layer (the default action catalog), read as package
data through importlib.resources."""
