"""Sources: files loaded into the warehouse, a range of daily partitions at a time, behind blocking data checks."""
