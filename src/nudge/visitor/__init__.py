"""What the shopper did: the visit cookie, the long-term profile, signals -> visitor attributes."""
