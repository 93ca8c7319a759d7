"""agents_kit: Internet of Agents — server, protocol, client SDK and conversation flow."""
