"""The one exception users see: a one-line message naming the file, row or config field and what was expected."""


class JaxrecError(Exception):
  """A user-facing error. Launch scripts print `error: <message>` and exit with status 2."""
