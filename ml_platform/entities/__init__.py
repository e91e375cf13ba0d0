"""Entity specs: the population of each partition at the entity's grain, built from declared sources."""
