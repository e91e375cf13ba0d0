"""Online predictions: the live champion served over HTTP through the same feature code as batch scoring."""
