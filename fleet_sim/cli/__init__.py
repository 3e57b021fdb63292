"""Command-line edge: argument parsing and output; builds objects and hands them to drivers."""
