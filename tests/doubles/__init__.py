"""Test doubles: stand-ins for engines, tokenizers and servers, used only by the tests."""
