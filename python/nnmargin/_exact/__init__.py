"""Internals of :mod:`nnmargin.exact`: exact arithmetic for its proofs (:mod:`.rigorous`), the cell
programs with their multipliers (:mod:`.programs`) and the class-sorted training points with the
screening bounds (:mod:`.cells`)."""
