"""Statistics over stored results: coverage of spaces, failure analysis, flakiness."""
