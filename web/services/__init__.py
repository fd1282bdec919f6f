"""What the routes ask of the product, without HTTP: Send Secure and Reply All."""
