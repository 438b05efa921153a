"""Foundation: errors and findings, paths, safe writes, the project file."""
