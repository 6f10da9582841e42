"""Study statistics (:mod:`.stats`) and the human-readable study report (:mod:`.report`)."""
