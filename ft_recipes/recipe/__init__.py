"""The recipe language: load -> resolve `extends` -> validate -> normalise, the typed recipe, its data."""
