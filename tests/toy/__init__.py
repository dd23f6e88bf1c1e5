"""A toy domain, as a new feature would be added: one module, nothing edited elsewhere."""
