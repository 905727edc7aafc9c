"""pyvisa-sim YAML grammars, one file per instrument model (they also load in stock ``@sim``)."""
