-- The token a worker sends with each claim until it gets an answer. A claim committed just
-- before PostgreSQL went away reaches the worker as an error; asked again with the same token,
-- it gets back the job it took instead of leaving it running under its name until the lease
-- runs out. (A migration of its own: databases made by 0001 have been deployed.)
ALTER TABLE jobs ADD COLUMN claim_token bigint;
