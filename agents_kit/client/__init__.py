"""The IoA client SDK: connection, conversation state machine, task tracking, policies and adapters."""
