"""What a person sees that no stage owns: the report page's HTML, diagnostics figures and terminal
tables of state names."""
