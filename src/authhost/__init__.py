"""authhost: an ISO 8583 issuer authorisation host with fraud detection and card management."""

__version__ = "0.1.0"
