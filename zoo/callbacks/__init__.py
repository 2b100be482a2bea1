"""Lightning callbacks: NaN/inf loss check, confusion matrix, NYC outputs, delineation rounds."""
