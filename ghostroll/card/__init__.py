"""Reading a camera card: listing, planning, copying once with a hash, verifying, the card phase."""
