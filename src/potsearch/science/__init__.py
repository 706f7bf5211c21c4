"""The science of a run's transitions: the weighted graph, the action and its exact least-action fit
(Newton, SCCs, exclusion bounds), bootstrap errors, the detailed-balance tests, what a stage dropped,
thin-data advice, synthetic agents with a known potential. Pure numpy/scipy over the store's counts."""
