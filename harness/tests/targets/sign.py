#!/usr/bin/env python3
"""The request signer for notes_server.py with NOTES_SIGNED=1, as a profile's
`[auth] sign` command: reads the request the harness is about to send (JSON on stdin:
method, url, headers, body_base64) and prints the headers to add, one per line."""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

secret = os.environ.get("NOTES_TOKEN_SECRET", "notes-dev-secret-0123456789abcdef").encode()
request = json.load(sys.stdin)
body = base64.b64decode(request["body_base64"])
stamp = str(int(time.time()))
signature = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
print(f"X-Notes-Timestamp: {stamp}")
print(f"X-Notes-Signature: {signature}")
