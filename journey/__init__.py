"""Journey: predictive customer-journey modelling (command line entry point)."""

__version__ = "0.1.0"
