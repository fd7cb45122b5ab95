"""The node as a whole: setting it up, starting and stopping it, reporting on it."""
