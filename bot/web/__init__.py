"""The web app: the patients' chat page (talks to Rasa's socket.io channel) and, later, the nurses'
dashboard under /staff/. `python -m bot web --port 8080 --rasa-url http://localhost:5005`."""
