"""What a run is: settings groups, the run config and its validation, recipes, the command line's flags.

Above `io/`; imports nothing else of tl_keras (each modality brings its own checks when it registers
itself in `config.modalities`).
"""
