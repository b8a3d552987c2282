// Families not written yet; each moves to its own file (named after Keras's module) when implemented.
