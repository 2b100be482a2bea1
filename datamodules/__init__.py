"""Lightning DataModules for the zoo's datasets."""
