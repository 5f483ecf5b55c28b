"""envbuild Lambda code: the spec model, AWS clients, errors, domain steps and thin handlers."""
