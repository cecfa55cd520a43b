"""A toy outbound integration: records what it sees on the bus."""
