"""A cheap PBKDF2 for a test server: DOT still hashes client secrets, in milliseconds instead of ~0.5 s."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1000
