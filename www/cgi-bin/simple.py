#!/usr/bin/env python3
"""The chapter's CGI example, made to show the query string it was given."""
import html
import os
from datetime import datetime

print("Content-Type: text/html; charset=utf-8")
print()
print("<html><body>")
print("<p>Generated {0}</p>".format(datetime.now()))
print("<p>QUERY_STRING: {0}</p>".format(html.escape(os.environ.get("QUERY_STRING", ""))))
print("</body></html>")
