"""Lightning callbacks: NaN/inf loss check, confusion matrix, training curves, NYC outputs, per-node predictions."""
