#!/usr/bin/env python3
"""The chapter's CGI example, grown to show everything it was given: the method, the query
string and, for a POST, the form fields read from standard input."""
import html
import os
import sys
from datetime import datetime, timezone
from urllib.parse import parse_qsl


def row(name, value):
    return "<tr><th>{0}</th><td>{1}</td></tr>".format(html.escape(name), html.escape(value))


method = os.environ.get("REQUEST_METHOD", "")
query = os.environ.get("QUERY_STRING", "")
length = int(os.environ.get("CONTENT_LENGTH") or 0)
body = sys.stdin.buffer.read(length).decode("utf-8", "replace") if length else ""
fields = parse_qsl(body, keep_blank_values=True)
if os.environ.get("CONTENT_TYPE", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
    fields = []

print("Content-Type: text/html; charset=utf-8")
print()
print("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>What the script received</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<nav><a href="/">Home</a> / <a href="/form.html">the form</a></nav>
<h1>What the script received</h1>
<table id="request">""")
print(row("Generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")))
print(row("REQUEST_METHOD", method))
print(row("QUERY_STRING", query))
print(row("CONTENT_TYPE", os.environ.get("CONTENT_TYPE", "")))
print(row("CONTENT_LENGTH", str(length)))
print("</table>")
if fields:
    print('<h2>Form fields</h2>\n<table id="fields">')
    for name, value in fields:
        print(row(name, value))
    print("</table>")
print("</body>\n</html>")
