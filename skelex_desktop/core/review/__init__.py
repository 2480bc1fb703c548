"""Human review: the worklist, the label schema, decisions (labels), reader regions and the
Qt-free review session a front end subscribes to."""
