"""The live web page served at ``/`` (static HTML + JS, packaged as data)."""
