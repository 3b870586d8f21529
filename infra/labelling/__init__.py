"""Labelling: pick the frames worth labelling (`camsort sample`), label them in a page (`camsort label`),
and hand the labels to training and to Label Studio."""
