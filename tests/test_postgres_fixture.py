def test_postgres_server_answers(postgres_url):
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url)
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("select 1 + 1")).scalar() == 2
    engine.dispose()
