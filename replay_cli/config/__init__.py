"""Check a composed config before anything is built."""
