"""Reading traces and other request files for replay and analysis; trace summaries."""
