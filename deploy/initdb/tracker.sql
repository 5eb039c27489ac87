-- Rasa's SQL tracker store keeps conversations in their own database
CREATE DATABASE hsg_tracker OWNER hsg;
