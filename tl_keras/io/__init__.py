"""Files and folders, standard library only: atomic writes, the run folder's layout.

The bottom layer: every other folder may import it; it imports no other part of tl_keras.
"""
