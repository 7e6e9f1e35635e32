-- A timed grant holds only where and for whom it was given: the working directory it was
-- approved in and the kind of requester (person, model, job). NULL: any.
ALTER TABLE exec_rules ADD COLUMN only_cwd TEXT;
ALTER TABLE exec_rules ADD COLUMN only_requester TEXT;
