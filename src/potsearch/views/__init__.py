"""What a person sees that no stage owns: diagnostics figures and terminal tables of state names."""
